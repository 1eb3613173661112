//! Webhook path: signed deliveries per second over HTTP, and latency at half of ours' peak.
//!
//! `wrk` (Debian's package, with `bench/wrk/signed.lua`) POSTs signed V3 deliveries of the
//! Slack fixture to three servers, each in its own process:
//! 1. floor: a bare hyper 1.x server answering 200 without reading the body;
//! 2. ours: `listener_core::webhook::WebhookSource` (verify, replay check, dispatch) + one no-op
//!    handler;
//! 3. peer: FastAPI + uvicorn verifying with Composio's Python SDK (`verify_webhook`),
//!    `bench/peers/webhook_peer.py`.
//!
//! Every request carries its own `webhook-id` and event id (the server's replay protection
//! and the dispatcher's dedupe would otherwise take a cheaper path): before each run this
//! harness signs a fresh pool of deliveries, one file per wrk thread, and the Lua script
//! sends each line once. A run fails if wrk saw any error or non-2xx answer, if a thread ran
//! out of pool, or (ours) on a duplicate or a handler-run count that does not match the
//! accepted deliveries (see [`check_ours`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use listener_core::source::Health;
use listener_core::webhook::{sign, WebhookSecret, WebhookSource};
use listener_core::{Filter, Handler, Listener, TriggerEvent};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::stats::{median, ms};

/// The V3 Slack trigger message every delivery carries (with its own event id).
const FIXTURE: &str = include_str!("../../tests/fixtures/v3_slack_receive_message.json");

/// The secret every server verifies with, used the way Composio's SDK uses it (its UTF-8
/// bytes are the HMAC key).
pub(crate) const SECRET: &str = "whsec_bGlzdGVuZXItYmVuY2gtd2ViaG9vaw";

/// Where deliveries are POSTed on every server.
pub(crate) const PATH: &str = "/webhook";

/// Webhook benchmark settings.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Runs per variant (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// wrk connections for the throughput runs.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Pre-signed deliveries per second of run for ours and the floor: the pool holds
    /// duration x this (a bound on the rate; a run that exhausts it fails).
    #[arg(long, default_value_t = 200_000)]
    pub pool_rate: u64,
    /// The same bound for the Python peer.
    #[arg(long, default_value_t = 30_000)]
    pub peer_pool_rate: u64,
    /// Seconds of the paced latency run.
    #[arg(long, default_value_t = 10)]
    pub latency_secs: u64,
    /// Mean pause in milliseconds between a connection's requests in the latency run; the
    /// connection count follows from it and the target rate.
    #[arg(long, default_value_t = 10)]
    pub latency_delay_ms: u64,
    /// uvicorn workers for the peer (default: run it twice, with uvicorn's default of one
    /// worker, which the target is checked against, and with one worker per core).
    #[arg(long)]
    pub peer_workers: Option<usize>,
    /// The Python with Composio's SDK, FastAPI and uvicorn; the peer is skipped without it.
    #[arg(long, env = "PEERS_PYTHON")]
    pub python: Option<PathBuf>,
    /// The wrk binary.
    #[arg(long, default_value = "wrk")]
    pub wrk: PathBuf,
}

/// Arguments of the hidden `serve-webhook` command (ours).
#[derive(clap::Args)]
pub struct ServeOursArgs {
    /// The webhook secret (Composio's scheme).
    #[arg(long, default_value = SECRET)]
    secret: String,
    /// `WebhookSource::max_connections` (default: the library's).
    #[arg(long)]
    max_connections: Option<usize>,
    /// `WebhookSource::body_timeout` in seconds (default: the library's).
    #[arg(long)]
    body_timeout_secs: Option<u64>,
    /// `WebhookSource::header_timeout` in seconds (default: the library's).
    #[arg(long)]
    header_timeout_secs: Option<u64>,
    /// `WebhookSource::max_header_bytes` (default: the library's).
    #[arg(long)]
    max_header_bytes: Option<usize>,
}

// ------------------------------------------------------------------------------------------
// The servers under test (hidden subcommands of this binary, one process each).

/// Ours: `WebhookSource` + dispatcher + one no-op handler that counts its runs. Prints
/// `READY <addr>` once serving; a stdin line `count` waits until no handler run is in flight
/// and prints `count <handler runs> <events dispatched> <duplicates>`; stdin closed: stops.
pub async fn serve_ours(args: ServeOursArgs) -> anyhow::Result<()> {
    let runs = Arc::new(AtomicU64::new(0));
    let mut source = WebhookSource::bind(
        "127.0.0.1:0".parse()?,
        vec![WebhookSecret::composio(args.secret)],
    )?
    .path(PATH)?;
    if let Some(n) = args.max_connections {
        source = source.max_connections(n);
    }
    if let Some(s) = args.body_timeout_secs {
        source = source.body_timeout(Duration::from_secs(s));
    }
    if let Some(s) = args.header_timeout_secs {
        source = source.header_timeout(Duration::from_secs(s));
    }
    if let Some(n) = args.max_header_bytes {
        source = source.max_header_bytes(n);
    }
    let addr = source.local_addr();
    let counter = Arc::clone(&runs);
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(Handler::new(
            "noop",
            Filter::new().name("SLACK_RECEIVE_MESSAGE"),
            move |_: Arc<TriggerEvent>| {
                counter.fetch_add(1, Ordering::Relaxed);
                async {}
            },
        ))
        .build()?
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !handle
        .health()
        .iter()
        .any(|s| s.health == Health::Connected)
    {
        ensure!(
            Instant::now() < deadline,
            "webhook source not serving: {:?}",
            handle.health()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("READY {addr}");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        if line.trim() != "count" {
            continue;
        }
        let dispatcher = handle.dispatcher();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stats = dispatcher.stats();
            if dispatcher.in_flight() == 0 && stats.runs == runs.load(Ordering::SeqCst) {
                println!(
                    "count {} {} {}",
                    runs.load(Ordering::SeqCst),
                    stats.events,
                    stats.duplicates
                );
                break;
            }
            ensure!(Instant::now() < deadline, "handler runs never settled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    handle.shutdown().await?;
    Ok(())
}

/// The floor: a bare hyper 1.x HTTP/1.1 server answering 200 with an empty body without
/// reading the request body. Prints `READY <addr>`; stdin closed: stops.
pub async fn serve_floor() -> anyhow::Result<()> {
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("READY {}", listener.local_addr()?);
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            line = stdin.next_line() => match line {
                Ok(Some(_)) => continue,
                _ => return Ok(()),
            },
        };
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<Incoming>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new()))
            });
            // A connection error (the client went away) ends only that connection.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// ------------------------------------------------------------------------------------------
// Server processes, seen from the harness.

/// A server under test in its own process: stdin open while it should run, stdout lines.
pub(crate) struct ServerProc {
    name: &'static str,
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    pub(crate) addr: String,
}

impl ServerProc {
    /// Spawns `cmd` and waits (up to `startup`) for its `READY <addr>` line.
    async fn start(
        name: &'static str,
        mut cmd: Command,
        startup: Duration,
    ) -> anyhow::Result<ServerProc> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let stdin = child.stdin.take();
        let line = tokio::time::timeout(startup, stdout.next_line())
            .await
            .with_context(|| format!("{name} did not print READY within {startup:?}"))??
            .with_context(|| format!("{name} exited before READY"))?;
        let addr = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["READY", addr] => (*addr).to_owned(),
            _ => bail!("{name}: unexpected first line {line:?}"),
        };
        Ok(ServerProc {
            name,
            child,
            stdin,
            stdout,
            addr,
        })
    }

    /// Where deliveries are POSTed.
    fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Waits for `n` more stdout lines starting with `prefix` (the peer's workers).
    async fn await_lines(
        &mut self,
        prefix: &str,
        n: usize,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = 0;
        while seen < n {
            let line = tokio::time::timeout_at(deadline, self.stdout.next_line())
                .await
                .with_context(|| format!("{}: {seen} of {n} `{prefix}` lines", self.name))??
                .with_context(|| format!("{} exited", self.name))?;
            if line.starts_with(prefix) {
                seen += 1;
            }
        }
        Ok(())
    }

    /// Ours only: handler runs, events and duplicates so far, once no run is in flight.
    pub(crate) async fn count(&mut self) -> anyhow::Result<(u64, u64, u64)> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(b"count\n").await?;
        stdin.flush().await?;
        let line = tokio::time::timeout(Duration::from_secs(60), self.stdout.next_line())
            .await
            .context("no count answer")??
            .context("ours exited")?;
        let n: Vec<u64> = line
            .strip_prefix("count ")
            .with_context(|| format!("unexpected answer {line:?}"))?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        match n.as_slice() {
            [runs, events, duplicates] => Ok((*runs, *events, *duplicates)),
            _ => bail!("unexpected answer {line:?}"),
        }
    }

    /// Closes stdin (the server's signal to stop) and waits for the process to end.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                ensure!(status.success(), "{} exited with {status}", self.name);
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("{} did not stop within 20 s of stdin closing", self.name);
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Pre-signed request pools.

/// The delivery body split around its event id.
struct Template {
    prefix: String,
    suffix: String,
}

impl Template {
    /// The fixture as compact JSON, split at its `id` value.
    fn new() -> anyhow::Result<Template> {
        const MARK: &str = "@@EVENT_ID@@";
        let mut v: serde_json::Value = serde_json::from_str(FIXTURE)?;
        v["id"] = serde_json::Value::String(MARK.into());
        let text = serde_json::to_string(&v)?;
        let (prefix, suffix) = text.split_once(MARK).context("no id mark")?;
        Ok(Template {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// Body bytes with an event id of `id_len` characters.
    fn body_len(&self, id_len: usize) -> usize {
        self.prefix.len() + id_len + self.suffix.len()
    }
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    fn new() -> anyhow::Result<TempDir> {
        let dir =
            std::env::temp_dir().join(format!("listener-bench-webhook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `threads` pool files `<dir>/<tag>.<k>`, each with `per_thread` deliveries signed
/// now (ids `msg_<tag>_<k>_<i>`, event ids `evt_<tag>_<k>_<i>`); returns the path prefix.
async fn write_pool(
    dir: &Path,
    tag: &str,
    threads: usize,
    per_thread: u64,
    template: &Arc<Template>,
) -> anyhow::Result<PathBuf> {
    let prefix = dir.join(tag);
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut jobs = Vec::new();
    for k in 0..threads {
        let file = PathBuf::from(format!("{}.{k}", prefix.display()));
        let (tag, template) = (tag.to_owned(), Arc::clone(template));
        jobs.push(tokio::task::spawn_blocking(
            move || -> anyhow::Result<()> {
                use std::io::Write;
                let secret = WebhookSecret::composio(SECRET);
                let mut out = std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(&file).with_context(|| format!("{}", file.display()))?,
                );
                writeln!(out, "{timestamp}\n{}\n{}", template.prefix, template.suffix)?;
                let mut body = Vec::with_capacity(template.body_len(64));
                for i in 0..per_thread {
                    let id = format!("msg_{tag}_{k}_{i}");
                    let event_id = format!("evt_{tag}_{k}_{i}");
                    body.clear();
                    body.extend_from_slice(template.prefix.as_bytes());
                    body.extend_from_slice(event_id.as_bytes());
                    body.extend_from_slice(template.suffix.as_bytes());
                    let signature = sign(&secret, &id, timestamp, &body);
                    writeln!(out, "{id} {event_id} {signature}")?;
                }
                out.flush()?;
                Ok(())
            },
        ));
    }
    for job in jobs {
        job.await??;
    }
    Ok(prefix)
}

/// Deletes a run's pool files.
fn remove_pool(prefix: &Path, threads: usize) {
    for k in 0..threads {
        let _ = std::fs::remove_file(format!("{}.{k}", prefix.display()));
    }
}

// ------------------------------------------------------------------------------------------
// wrk runs.

/// What `done()` in the Lua script reported.
#[derive(Debug, Clone, Default)]
struct WrkResult {
    requests: u64,
    duration: Duration,
    connect: u64,
    read: u64,
    write: u64,
    status: u64,
    timeout: u64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
    pool_used: u64,
    exhausted_threads: u64,
    /// CPU the server (and its worker processes) used during the run.
    server_cpu: Duration,
}

impl WrkResult {
    /// Reads the `WRK_RESULT` line from wrk's output.
    fn parse(stdout: &str) -> anyhow::Result<WrkResult> {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("WRK_RESULT "))
            .context("wrk printed no WRK_RESULT line")?;
        let mut r = WrkResult::default();
        for pair in line.split_whitespace() {
            let (key, value) = pair.split_once('=').context("key=value")?;
            let n: u64 = value.parse().with_context(|| pair.to_owned())?;
            let us = Duration::from_micros(n);
            match key {
                "requests" => r.requests = n,
                "duration_us" => r.duration = us,
                "connect" => r.connect = n,
                "read" => r.read = n,
                "write" => r.write = n,
                "status" => r.status = n,
                "timeout" => r.timeout = n,
                "p50_us" => r.p50 = us,
                "p99_us" => r.p99 = us,
                "p999_us" => r.p999 = us,
                "max_us" => r.max = us,
                "pool_used" => r.pool_used = n,
                "exhausted_threads" => r.exhausted_threads = n,
                _ => {}
            }
        }
        ensure!(!r.duration.is_zero(), "wrk reported no duration: {line}");
        Ok(r)
    }

    /// Socket errors, timeouts and non-2xx answers.
    fn errors(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }

    /// Completed requests per second.
    fn rate(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64()
    }

    /// Server CPU per request, in microseconds.
    fn cpu_us(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

/// One wrk run's shape.
struct Load {
    secs: u64,
    connections: usize,
    threads: usize,
    /// Upper bound of each connection's random pause between requests (0: none).
    max_delay_ms: u64,
    /// Pool entries per thread.
    per_thread: u64,
}

/// What the runs share: settings, the pool directory, the body template, and the largest
/// share of a pool any run used.
struct Harness<'a> {
    args: &'a Args,
    dir: TempDir,
    template: Arc<Template>,
    pool_share: f64,
}

impl Harness<'_> {
    /// Signs a fresh pool, runs wrk against `server`, and checks the run was clean.
    async fn run(
        &mut self,
        server: &ServerProc,
        tag: &str,
        load: &Load,
    ) -> anyhow::Result<WrkResult> {
        let pid = server.child.id().unwrap_or(0);
        let cpu = crate::stats::tree_cpu_time(pid);
        let mut r = wrk_run(
            self.args,
            &self.dir.0,
            &self.template,
            &server.url(),
            tag,
            load,
        )
        .await?;
        r.server_cpu = crate::stats::tree_cpu_time(pid).saturating_sub(cpu);
        let pool = load.per_thread * load.threads as u64;
        self.pool_share = self.pool_share.max(r.pool_used as f64 / pool as f64);
        Ok(r)
    }
}

/// Signs a fresh pool, runs wrk against `url`, and checks the run was clean.
async fn wrk_run(
    args: &Args,
    dir: &Path,
    template: &Arc<Template>,
    url: &str,
    tag: &str,
    load: &Load,
) -> anyhow::Result<WrkResult> {
    let pool = write_pool(dir, tag, load.threads, load.per_thread, template).await?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("wrk/signed.lua");
    let out = tokio::time::timeout(
        Duration::from_secs(load.secs + 60),
        Command::new(&args.wrk)
            .arg(format!("-t{}", load.threads))
            .arg(format!("-c{}", load.connections))
            .arg(format!("-d{}s", load.secs))
            .arg("--timeout")
            .arg("5s")
            .arg("-s")
            .arg(&script)
            .arg(url)
            .arg("--")
            .arg(&pool)
            .arg(load.max_delay_ms.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("wrk did not finish")?
    .with_context(|| {
        format!(
            "running {} (Debian's `wrk`; scripts/install-bench-peers.sh installs it)",
            args.wrk.display()
        )
    })?;
    remove_pool(&pool, load.threads);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "wrk failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let r = WrkResult::parse(&stdout).with_context(|| format!("{stdout}\n{stderr}"))?;
    ensure!(
        r.exhausted_threads == 0,
        "{tag}: {} wrk thread(s) ran out of pre-signed deliveries ({} per thread); raise \
         --pool-rate / --peer-pool-rate",
        r.exhausted_threads,
        load.per_thread
    );
    ensure!(
        r.errors() == 0 && r.requests > 0,
        "{tag}: {} requests with errors (connect {}, read {}, write {}, non-2xx {}, \
         timeout {}):\n{stdout}",
        r.requests,
        r.connect,
        r.read,
        r.write,
        r.status,
        r.timeout
    );
    ensure!(
        r.pool_used >= r.requests,
        "{tag}: {} responses but only {} pool entries used",
        r.requests,
        r.pool_used
    );
    Ok(r)
}

/// Checks that ours ran its handler once per accepted delivery since the last count: at
/// least once per 2xx wrk counted, at most once more per connection (requests in flight
/// when wrk stopped were handled but not counted), and no duplicate.
async fn check_ours(
    ours: &mut ServerProc,
    last: &mut (u64, u64, u64),
    r: &WrkResult,
    connections: usize,
) -> anyhow::Result<u64> {
    let now = ours.count().await?;
    let (runs, events, duplicates) = (now.0 - last.0, now.1 - last.1, now.2 - last.2);
    *last = now;
    let ok = r.requests - r.status;
    ensure!(
        duplicates == 0,
        "ours saw {duplicates} duplicate deliveries"
    );
    ensure!(
        runs > 0 && runs >= ok && runs <= ok + connections as u64 && runs == events,
        "ours: {runs} handler runs and {events} events for {ok} accepted deliveries"
    );
    Ok(runs)
}

// ------------------------------------------------------------------------------------------
// The benchmark.

/// Cores available to this process.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts ours (`serve-webhook`) in its own process.
async fn start_ours() -> anyhow::Result<ServerProc> {
    start_ours_with(&[]).await
}

/// Starts ours with extra `serve-webhook` arguments.
pub(crate) async fn start_ours_with(extra: &[String]) -> anyhow::Result<ServerProc> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("serve-webhook").args(extra);
    ServerProc::start("ours", cmd, Duration::from_secs(10)).await
}

/// Starts the floor (`serve-floor`) in its own process.
async fn start_floor() -> anyhow::Result<ServerProc> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("serve-floor");
    ServerProc::start("floor", cmd, Duration::from_secs(10)).await
}

/// Starts the Python peer with `workers` uvicorn workers and waits until all serve.
async fn start_peer(python: &Path, workers: usize) -> anyhow::Result<ServerProc> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers/webhook_peer.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .env("WEBHOOK_SECRET", SECRET)
        .env("WEBHOOK_PATH", PATH)
        .env("WORKERS", workers.to_string());
    let mut peer = ServerProc::start("peer", cmd, Duration::from_secs(60)).await?;
    // Importing Composio's SDK takes seconds: wait until every worker serves.
    peer.await_lines("WORKER_READY", workers, Duration::from_secs(120))
        .await?;
    Ok(peer)
}

/// Pool entries per wrk thread for `secs` at up to `rate_bound` requests/s (plus slack).
fn per_thread(rate_bound: u64, secs: u64, threads: usize) -> u64 {
    (rate_bound * secs).div_ceil(threads as u64) + 1_000
}

/// Counts ours' handler runs across runs (see [`check_ours`]).
#[derive(Default)]
struct OursTally {
    last: (u64, u64, u64),
    handler_runs: u64,
    accepted: u64,
}

impl OursTally {
    /// Checks ours' handler runs for one wrk run and adds them up.
    async fn check(
        &mut self,
        ours: &mut ServerProc,
        r: &WrkResult,
        connections: usize,
    ) -> anyhow::Result<()> {
        self.handler_runs += check_ours(ours, &mut self.last, r, connections).await?;
        self.accepted += r.requests - r.status;
        Ok(())
    }
}

/// Runs every variant and returns the Markdown tables.
pub async fn run(args: Args) -> anyhow::Result<String> {
    ensure!(
        args.threads >= 1 && args.connections >= args.threads,
        "need at least one thread and one connection per thread"
    );
    ensure!(
        args.runs >= 1 && args.duration >= 1 && args.latency_secs >= 1,
        "need runs and durations"
    );
    let mut h = Harness {
        args: &args,
        dir: TempDir::new()?,
        template: Arc::new(Template::new()?),
        pool_share: 0.0,
    };
    let mut worker_counts = match args.peer_workers {
        Some(w) => vec![w],
        None => vec![1, cores()],
    };
    worker_counts.dedup();

    let floor_srv = start_floor().await?;
    let mut ours_srv = start_ours().await?;
    let mut peer_srvs = Vec::new();
    if let Some(py) = &args.python {
        for &workers in &worker_counts {
            peer_srvs.push((workers, start_peer(py, workers).await?));
        }
    }
    let mut tally = OursTally {
        last: ours_srv.count().await?,
        ..OursTally::default()
    };

    let load = |secs: u64, bound: u64| Load {
        secs,
        connections: args.connections,
        threads: args.threads,
        max_delay_ms: 0,
        per_thread: per_thread(bound, secs, args.threads),
    };
    let main_load = load(args.duration, args.pool_rate);
    let peer_load = load(args.duration, args.peer_pool_rate);
    let warm = args.duration.clamp(1, 2);

    // Warm-up (connections, allocator, the peer's lazy imports), not reported.
    h.run(&floor_srv, "wf", &load(warm, args.pool_rate)).await?;
    let r = h.run(&ours_srv, "wo", &load(warm, args.pool_rate)).await?;
    tally.check(&mut ours_srv, &r, args.connections).await?;
    for (workers, srv) in &peer_srvs {
        h.run(
            srv,
            &format!("wp{workers}"),
            &load(warm, args.peer_pool_rate),
        )
        .await?;
    }

    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    // Server CPU per request (µs), per variant.
    let (mut floor_cpu, mut ours_cpu) = (Vec::new(), Vec::new());
    let mut peers: Vec<(usize, Vec<f64>)> =
        peer_srvs.iter().map(|(w, _)| (*w, Vec::new())).collect();
    let mut peers_cpu: Vec<Vec<f64>> = peer_srvs.iter().map(|_| Vec::new()).collect();
    for run in 0..args.runs {
        // Interleaved, so drift on the machine hits every variant alike.
        let r = h.run(&floor_srv, &format!("f{run}"), &main_load).await?;
        floor.push(r.rate());
        floor_cpu.push(r.cpu_us());
        let r = h.run(&ours_srv, &format!("o{run}"), &main_load).await?;
        tally.check(&mut ours_srv, &r, args.connections).await?;
        ours.push(r.rate());
        ours_cpu.push(r.cpu_us());
        for (((workers, srv), (_, rates)), cpus) in peer_srvs
            .iter()
            .zip(peers.iter_mut())
            .zip(peers_cpu.iter_mut())
        {
            let r = h.run(srv, &format!("p{workers}_{run}"), &peer_load).await?;
            rates.push(r.rate());
            cpus.push(r.cpu_us());
        }
        eprintln!("webhook run {}/{} done", run + 1, args.runs);
    }
    let (f, o) = (median(floor.clone()), median(ours.clone()));
    let peer_medians: Vec<(usize, f64)> =
        peers.iter().map(|(w, r)| (*w, median(r.clone()))).collect();

    // The latency run is ours' alone: the other servers are stopped first.
    floor_srv.stop().await?;
    for (_, srv) in peer_srvs {
        srv.stop().await?;
    }

    // Latency at half of ours' peak: each connection pauses a random 0..=2*mean ms before
    // each request, so the offered rate is about connections x 1000 / mean. A short
    // calibration run first corrects the connection count for what that leaves out (the
    // response time and wrk's timer granularity add to every pause).
    let target = o / 2.0;
    let mean_delay = args.latency_delay_ms.max(1);
    let paced = |secs: u64, connections: usize| Load {
        secs,
        connections,
        threads: args.threads,
        max_delay_ms: 2 * mean_delay,
        per_thread: per_thread((target * 2.0) as u64 + 1, secs, args.threads),
    };
    let mut lat_connections =
        ((target * mean_delay as f64 / 1000.0).round() as usize).max(args.threads);
    let calibration = paced(args.latency_secs.clamp(1, 3), lat_connections);
    let r = h.run(&ours_srv, "cal", &calibration).await?;
    tally.check(&mut ours_srv, &r, lat_connections).await?;
    lat_connections =
        ((lat_connections as f64 * target / r.rate()).round() as usize).max(args.threads);
    let lat = h
        .run(&ours_srv, "lat", &paced(args.latency_secs, lat_connections))
        .await?;
    tally.check(&mut ours_srv, &lat, lat_connections).await?;

    ours_srv.stop().await?;

    let fmt_runs = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let body = h.template.body_len("evt_o0_0_0".len());
    let mut t = String::new();
    t.push_str(&format!(
        "### Webhook throughput (wrk {} threads, {} connections, {} s per run, keep-alive; \
         signed V3 Slack delivery of ~{body} bytes, unique ids)\n\n",
        args.threads, args.connections, args.duration
    ));
    t.push_str(&format!(
        "| variant | requests/s (median of {}) | runs | server CPU per request (median) |\n| --- | ---: | --- | ---: |\n",
        args.runs
    ));
    t.push_str(&format!(
        "| floor: bare hyper 1.x http1, 200 without reading the body | {f:.0} | {} | {:.1} µs |\n",
        fmt_runs(&floor),
        median(floor_cpu.clone())
    ));
    t.push_str(&format!(
        "| ours: WebhookSource (verify, replay check, dispatch) + 1 no-op handler | {o:.0} | {} | {:.1} µs |\n",
        fmt_runs(&ours),
        median(ours_cpu.clone())
    ));
    for (((workers, p), (_, rates)), cpus) in peer_medians.iter().zip(&peers).zip(&peers_cpu) {
        t.push_str(&format!(
            "| peer: FastAPI + uvicorn ({}), Composio SDK verify_webhook | {p:.0} | {} | {:.1} µs |\n",
            worker_label(*workers),
            fmt_runs(rates),
            median(cpus.clone())
        ));
    }
    if peers.is_empty() {
        t.push_str(
            "| peer: FastAPI + uvicorn, Composio SDK verify_webhook | not run (no PEERS_PYTHON) | | |\n",
        );
    }
    t.push_str("\n| ratio | value | target |\n| --- | ---: | --- |\n");
    t.push_str(&format!("| ours / floor | {:.2} | >= 0.7 |\n", o / f));
    for (workers, p) in &peer_medians {
        let target = if *workers == 1 {
            ">= 10"
        } else {
            "(reference)"
        };
        t.push_str(&format!(
            "| ours / peer ({}) | {:.1} | {target} |\n",
            worker_label(*workers),
            o / p
        ));
    }
    t.push_str(&format!(
        "\nEvery run: no errors, no non-2xx, no wrk thread out of pre-signed deliveries (at most \
         {:.0}% of a pool used); ours ran its handler {} times for {} accepted deliveries counted \
         by wrk (the rest were in flight when wrk stopped), no duplicates.\n",
        h.pool_share * 100.0,
        tally.handler_runs,
        tally.accepted
    ));
    t.push_str(&format!(
        "\n### Webhook latency (ours), send to response, offered ~{target:.0} requests/s (50% of \
         ours' peak): {} connections pausing 0-{} ms between requests, {} s, achieved {:.0} \
         requests/s ({} requests)\n\n",
        lat_connections,
        2 * mean_delay,
        args.latency_secs,
        lat.rate(),
        lat.requests
    ));
    t.push_str(
        "| p50 ms | p99 ms | p999 ms | max ms | target |\n| ---: | ---: | ---: | ---: | --- |\n",
    );
    t.push_str(&format!(
        "| {} | {} | {} | {} | p99 < 5 ms |\n",
        ms(lat.p50),
        ms(lat.p99),
        ms(lat.p999),
        ms(lat.max)
    ));
    Ok(t)
}

/// How a peer row names its uvicorn worker count.
fn worker_label(workers: usize) -> String {
    match workers {
        1 => "1 worker, uvicorn's default".to_owned(),
        n => format!("{n} workers"),
    }
}
