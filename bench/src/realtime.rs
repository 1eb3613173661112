//! Realtime path: events per second from publish to handler, and latency.
//!
//! One hub process publishes N copies of the ~600-byte V3 Slack fixture (unique ids) on the
//! trigger channel as fast as it can; the clients, one at a time:
//! 1. floor: a bare tokio-tungstenite client that subscribes and only counts frames;
//! 2. ours: `ComposioSource` + dispatcher + one matching no-op async handler;
//! 3. ours with 10,000 registered handlers, one matching;
//! 4. peer: Composio's Python SDK listener (`TriggerSubscription` over pysher), one no-op callback.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use listener_core::source::composio::ComposioSource;
use listener_core::source::Health;
use listener_core::{Filter, Handler, Listener, ListenerHandle, Payload, TriggerEvent};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use crate::hub_proc::HubProc;
use crate::stats::{median, ms, quantile};

const FIXTURE: &str = include_str!("../../tests/fixtures/v3_slack_receive_message.json");

/// Realtime benchmark settings.
#[derive(clap::Args)]
pub struct Args {
    /// Events per throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Events per run of the Python peer (slower; its rate is what is compared).
    #[arg(long, default_value_t = 2_000)]
    pub peer_events: usize,
    /// Runs per variant (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds of paced publishing for the latency measurement.
    #[arg(long, default_value_t = 5)]
    pub latency_secs: u64,
    /// The Python with Composio's SDK; the peer is skipped without it.
    #[arg(long, env = "PEERS_PYTHON")]
    pub python: Option<PathBuf>,
    /// sockudo's binary: every variant is also run against sockudo (fed through its HTTP
    /// API); skipped without it.
    #[arg(long, env = "SOCKUDO_BIN")]
    pub sockudo: Option<PathBuf>,
    /// Only run ours (1 handler) and skip the tables' other variants: for profiling the
    /// client under `perf record`.
    #[arg(long)]
    pub profile_ours: bool,
}

/// Counts handler runs and records when the target is reached.
#[derive(Default)]
struct Counter {
    seen: AtomicUsize,
    target: AtomicUsize,
    done: Notify,
}

impl Counter {
    fn hit(&self) {
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.target.load(Ordering::Relaxed) {
            self.done.notify_one();
        }
    }

    fn reset(&self, target: usize) {
        self.seen.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
    }
}

async fn floor_run(hub: &HubProc, n: usize, tag: &str) -> anyhow::Result<f64> {
    let url = format!(
        "ws://{}/app/{}?client=bench&protocol=7",
        hub.addr, hub.app_key
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let first = ws.next().await.context("closed")??.into_text()?;
    let outer: Value = serde_json::from_str(&first)?;
    let inner: Value = serde_json::from_str(outer["data"].as_str().context("data")?)?;
    let socket_id = inner["socket_id"].as_str().context("socket_id")?;
    let token = listener_core::source::pusher::protocol::sign_channel(
        &hub.app_key,
        &hub.app_secret,
        socket_id,
        hub.channel(),
    );
    let sub = serde_json::json!({"event": "pusher:subscribe", "data": {"channel": hub.channel(), "auth": token}});
    ws.send(Message::text(sub.to_string())).await?;
    loop {
        let msg = ws.next().await.context("closed")??;
        if msg
            .to_text()
            .unwrap_or_default()
            .contains("subscription_succeeded")
        {
            break;
        }
    }
    hub.await_subscribers(1).await?;
    let counting = tokio::spawn(async move {
        let mut count = 0;
        while count < n {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => count += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        let end = Instant::now();
        let _ = ws.close(None).await;
        (count, end)
    });
    hub.prepare(n, tag).await?;
    let t0 = Instant::now();
    hub.publish_synthetic(n, tag).await?;
    let (count, end) = counting.await?;
    anyhow::ensure!(count == n, "floor received {count} of {n}");
    hub.await_subscribers(0).await?;
    Ok(n as f64 / end.duration_since(t0).as_secs_f64())
}

fn ours_listener(
    hub: &HubProc,
    extra_handlers: usize,
    counter: Arc<Counter>,
    latencies: Option<Arc<Mutex<Vec<Duration>>>>,
) -> ListenerHandle {
    ours_listener_with(hub, extra_handlers, counter, latencies, true)
}

fn ours_listener_with(
    hub: &HubProc,
    extra_handlers: usize,
    counter: Arc<Counter>,
    latencies: Option<Arc<Mutex<Vec<Duration>>>>,
    matching: bool,
) -> ListenerHandle {
    let source = ComposioSource::new(&hub.api_key)
        .base_url(hub.base_url())
        .expect("http url")
        .pusher_host(hub.addr.ip().to_string())
        .pusher_port(hub.addr.port())
        .pusher_tls(false);
    let mut builder = Listener::builder()
        .without_registered_handlers()
        .source(source);
    if !matching {
        // Diagnostic: receive, decode and dedupe every event, run no handler.
        return builder.build().expect("listener").spawn();
    }
    builder = match latencies {
        None => builder.handler(Handler::new(
            "noop",
            Filter::new().name("SLACK_RECEIVE_MESSAGE"),
            move |_: Arc<TriggerEvent>| {
                counter.hit();
                async {}
            },
        )),
        Some(lat) => builder.handler(Handler::new(
            "noop",
            Filter::new().name("SLACK_RECEIVE_MESSAGE"),
            move |Payload(p): Payload<Value>| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos() as u64;
                let sent = p["sent_ns"].as_u64().unwrap_or(now);
                lat.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Duration::from_nanos(now.saturating_sub(sent)));
                counter.hit();
                async {}
            },
        )),
    };
    for i in 0..extra_handlers {
        let slug = format!("TOOLKIT{}_EVENT_{i}", i % 50);
        builder = builder.handler(Handler::new(
            format!("other{i}"),
            Filter::new().name(slug),
            |_: Arc<TriggerEvent>| async {},
        ));
    }
    builder.build().expect("listener").spawn()
}

async fn connected(handle: &ListenerHandle, hub: &HubProc) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !handle
        .health()
        .iter()
        .any(|s| s.health == Health::Connected)
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "listener never subscribed: {:?}",
            handle.health()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.await_subscribers(1).await
}

async fn ours_run(hub: &HubProc, n: usize, extra: usize, tag: &str) -> anyhow::Result<f64> {
    let counter = Arc::new(Counter::default());
    counter.reset(n);
    let handle = ours_listener(hub, extra, Arc::clone(&counter), None);
    connected(&handle, hub).await?;
    let done = counter.done.notified();
    tokio::pin!(done);
    done.as_mut().enable();
    hub.prepare(n, tag).await?;
    let t0 = Instant::now();
    hub.publish_synthetic(n, tag).await?;
    tokio::time::timeout(Duration::from_secs(120), done)
        .await
        .context("ours did not receive every event")?;
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    handle.shutdown().await?;
    hub.await_subscribers(0).await?;
    Ok(rate)
}

/// Diagnostic: the source and dispatcher with no matching handler (decode, dedupe, match).
async fn decode_only_run(hub: &HubProc, n: usize, tag: &str) -> anyhow::Result<f64> {
    let handle = ours_listener_with(hub, 0, Arc::new(Counter::default()), None, false);
    connected(&handle, hub).await?;
    hub.prepare(n, tag).await?;
    let t0 = Instant::now();
    hub.publish_synthetic(n, tag).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while handle.dispatcher().stats().events < n as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "decode-only run incomplete: {:?} of {n}",
            handle.dispatcher().stats()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    handle.shutdown().await?;
    hub.await_subscribers(0).await?;
    Ok(rate)
}

async fn peer_run(hub: &HubProc, python: &PathBuf, n: usize, tag: &str) -> anyhow::Result<f64> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/composio_listener.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .env("HUB_HOST", hub.addr.ip().to_string())
        .env("HUB_PORT", hub.addr.port().to_string())
        .env("COMPOSIO_API_KEY", &hub.api_key)
        .env("COMPOSIO_BASE_URL", hub.base_url())
        .env("EXPECT", n.to_string())
        .env("QUIET", "1")
        .env("TIMEOUT", "600")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    anyhow::ensure!(
        lines.next_line().await?.as_deref() == Some("READY"),
        "peer did not start"
    );
    hub.await_subscribers(1).await?;
    hub.prepare(n, tag).await?;
    let t0 = Instant::now();
    hub.publish_synthetic(n, tag).await?;
    let line = lines.next_line().await?;
    let elapsed = t0.elapsed();
    anyhow::ensure!(line.as_deref() == Some("DONE"), "peer ended with {line:?}");
    child.wait().await?;
    hub.await_subscribers(0).await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Paced publishing at `rate` events/s for `secs`; latency from publish (the hub stamps each
/// event as it publishes it) to handler start.
async fn latency_run(hub: &HubProc, rate: f64, secs: u64) -> anyhow::Result<Vec<Duration>> {
    let counter = Arc::new(Counter::default());
    let lat = Arc::new(Mutex::new(Vec::new()));
    let handle = ours_listener(hub, 0, Arc::clone(&counter), Some(Arc::clone(&lat)));
    connected(&handle, hub).await?;
    let tick = Duration::from_millis(10);
    let per_tick = ((rate * tick.as_secs_f64()).round() as usize).max(1);
    let ticks = (secs as f64 / tick.as_secs_f64()) as usize;
    counter.reset(per_tick * ticks);
    let done = counter.done.notified();
    tokio::pin!(done);
    done.as_mut().enable();
    let mut interval = tokio::time::interval(tick);
    for t in 0..ticks {
        interval.tick().await;
        hub.publish_synthetic(per_tick, &format!("lat{t}")).await?;
    }
    tokio::time::timeout(Duration::from_secs(60), done)
        .await
        .context("latency run incomplete")?;
    handle.shutdown().await?;
    hub.await_subscribers(0).await?;
    let mut v = std::mem::take(&mut *lat.lock().unwrap_or_else(|e| e.into_inner()));
    v.sort();
    Ok(v)
}

/// Runs every variant against the hub, then against sockudo when it is available, and
/// returns the Markdown tables.
pub async fn run(args: Args) -> anyhow::Result<String> {
    let hub = HubProc::start().await?;
    if args.profile_ours {
        for r in 0..args.runs {
            let cpu = crate::stats::cpu_time();
            let rate = ours_run(&hub, args.events, 0, &format!("o{r}")).await?;
            let per_event = (crate::stats::cpu_time() - cpu).as_secs_f64() / args.events as f64;
            eprintln!(
                "ours run {}: {rate:.0} events/s, {:.2} µs of client CPU per event",
                r + 1,
                per_event * 1e6
            );
        }
        return Ok(String::new());
    }
    let mut out = run_server(&hub, &args).await?;
    drop(hub);
    match &args.sockudo {
        Some(bin) => {
            let server = HubProc::start_sockudo(bin).await?;
            out.push('\n');
            out.push_str(&run_server(&server, &args).await?);
        }
        None => out.push_str("\n(sockudo not run: no SOCKUDO_BIN)\n"),
    }
    Ok(out)
}

/// Every variant against one server: throughput tables, ratios and latency.
async fn run_server(hub: &HubProc, args: &Args) -> anyhow::Result<String> {
    let server = hub.name;
    eprintln!("realtime against {server}");
    let (mut floor, mut ours, mut ours10k, mut peer) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut decode_only = Vec::new();
    // Warm-up (connections, allocator, page cache), not reported.
    floor_run(hub, args.events / 10, "warm_f").await?;
    ours_run(hub, args.events / 10, 0, "warm_o").await?;
    for r in 0..args.runs {
        // Interleaved, so drift on the machine hits every variant alike.
        floor.push(floor_run(hub, args.events, &format!("f{r}")).await?);
        ours.push(ours_run(hub, args.events, 0, &format!("o{r}")).await?);
        ours10k.push(ours_run(hub, args.events, 9_999, &format!("k{r}")).await?);
        decode_only.push(decode_only_run(hub, args.events, &format!("d{r}")).await?);
        if let Some(py) = &args.python {
            peer.push(peer_run(hub, py, args.peer_events, &format!("p{r}")).await?);
        }
        eprintln!("run {}/{} done", r + 1, args.runs);
    }
    let (f, o, k) = (
        median(floor.clone()),
        median(ours.clone()),
        median(ours10k.clone()),
    );
    let p = (!peer.is_empty()).then(|| median(peer.clone()));
    let lat = latency_run(hub, o / 2.0, args.latency_secs).await?;

    let fmt_runs = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut t = String::new();
    t.push_str(&format!(
        "### Realtime throughput ({server} on 127.0.0.1, {} events of {} bytes per run; peer {} per run)\n\n",
        args.events,
        FIXTURE.len(),
        args.peer_events
    ));
    t.push_str("| variant | events/s (median) | runs |\n| --- | ---: | --- |\n");
    t.push_str(&format!(
        "| floor: bare tokio-tungstenite client | {f:.0} | {} |\n",
        fmt_runs(&floor)
    ));
    t.push_str(&format!(
        "| ours: ComposioSource + dispatcher + 1 handler | {o:.0} | {} |\n",
        fmt_runs(&ours)
    ));
    t.push_str(&format!(
        "| ours, 10,000 handlers (1 matches) | {k:.0} | {} |\n",
        fmt_runs(&ours10k)
    ));
    t.push_str(&format!(
        "| diagnostic: ours with no matching handler (receive, decode, dedupe) | {:.0} | {} |\n",
        median(decode_only.clone()),
        fmt_runs(&decode_only)
    ));
    match p {
        Some(p) => t.push_str(&format!(
            "| peer: Composio Python SDK (pysher) | {p:.0} | {} |\n",
            fmt_runs(&peer)
        )),
        None => {
            t.push_str("| peer: Composio Python SDK (pysher) | not run (no PEERS_PYTHON) | |\n")
        }
    }
    t.push_str("\n| ratio | value | target |\n| --- | ---: | --- |\n");
    t.push_str(&format!("| ours / floor | {:.2} | >= 0.8 |\n", o / f));
    if let Some(p) = p {
        t.push_str(&format!("| ours / peer | {:.1} | >= 50 |\n", o / p));
    }
    t.push_str(&format!(
        "| ours 10,000 handlers / ours 1 handler | {:.2} | >= 0.9 |\n",
        k / o
    ));
    t.push_str(&format!(
        "\n### Realtime latency ({server}), publish to handler start, at {:.0} events/s (50% of ours' peak), {} events\n\n",
        o / 2.0,
        lat.len()
    ));
    t.push_str("| p50 ms | p99 ms | p999 ms | max ms |\n| ---: | ---: | ---: | ---: |\n");
    t.push_str(&format!(
        "| {} | {} | {} | {} |\n",
        ms(quantile(&lat, 0.5)),
        ms(quantile(&lat, 0.99)),
        ms(quantile(&lat, 0.999)),
        ms(quantile(&lat, 1.0))
    ));
    Ok(t)
}
